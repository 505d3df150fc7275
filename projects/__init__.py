"""Later studies, one snake_case package each (numbered in the README)."""
