"""TFX component code for shopbusy: module files (modules/) and custom components."""
