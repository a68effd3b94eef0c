"""The only code that talks to MLflow."""
