"""`emustore explain`: a teaching walk from an image reference down to the files of a data root."""
