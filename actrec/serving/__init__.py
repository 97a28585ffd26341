"""A trained model in use beyond the command line: the web page (`actrec serve`) and live streams (`actrec watch`)."""
