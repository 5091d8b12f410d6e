"""The Denoise widget and its job."""
