"""shopbusy: a TFX pipeline that trains, validates, gates and pushes the drone-shop "busy"
classifier. Where things are: README.md, "Where things are"."""
