"""The FiftyOne App: saved views, colour schemes, launching."""
