"""Reports of runs and drills: one document (`document`), rendered as JSON,
Markdown or one self-contained HTML file (`render`) with its timeline picture
as inline SVG (`timeline`)."""
