"""Reports of runs and drills: one document (`document`), its tables
(`sections`), rendered as JSON, Markdown or one self-contained HTML file
(`render`, `markdown`, `html`) with its timeline picture as inline SVG
(`timeline`, times in words by `units`)."""
