"""The run: plan edits, cut crops, call the model, paste, write and journal the results."""
