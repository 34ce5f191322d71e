"""Exchange with other tools: NIR export and import."""
