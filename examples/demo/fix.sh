#!/bin/sh
# The demo "agent": fixes the typo in greeting.txt and leaves a note.
set -eu
echo "agent: running as $(id -un 2>/dev/null || id -u) in $(pwd)"
echo "agent: before: $(cat greeting.txt)"
sed -i 's/Helo, wrold!/Hello, world!/' greeting.txt
echo "agent: after:  $(cat greeting.txt)"
# shellcheck disable=SC2016 # literal backticks (Markdown)
printf '%s\n' '# Notes' '' \
  '- Fixed the typo in `greeting.txt` ("Helo, wrold!" -> "Hello, world!").' \
  > NOTES.md
echo "agent: wrote NOTES.md"
