"""Small controllers that show how to write one; each is also a working plugin."""
