"""The only home of Ultralytics' and FiftyOne's private names and patches (one canary test per touch point)."""
