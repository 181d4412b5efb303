"""Manifest input: the static pod directory (source, inotify), parsing with file:line positions, validation and API defaults."""
