"""Live prediction: a conversation in progress (text, or a channel as of a moment) becomes the
dataset's prompt and the trained model's ranking of people to alert — `beep predict` and the Slack
app. It imports no evaluation run or report (docs/architecture.md)."""
