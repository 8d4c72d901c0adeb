"""One module per annotation format: pure parsers plus thin file readers/writers."""
