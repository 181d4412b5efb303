"""The command line: `nodelet <command>`, one module per command (main.py holds the click group)."""
