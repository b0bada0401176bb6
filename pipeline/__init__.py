"""shopbusy's pipeline definition, configuration, runners and command line."""
