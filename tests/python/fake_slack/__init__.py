"""A fake Slack (Web API over HTTP, Socket Mode over WebSocket) on 127.0.0.1 for the Slack app's tests."""
