"""Beep: Slack export -> training data -> a model that predicts who to alert."""
