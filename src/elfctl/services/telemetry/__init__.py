"""OpenTelemetry traces and metrics of LLM calls and deploys (issue 20): settings from config, the GenAI
spans and metrics, the deploy span, dropped-span reports and the health component. Off by default."""
