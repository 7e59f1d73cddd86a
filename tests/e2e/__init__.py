"""End-to-end tests: the real proxy between a real client and a real upstream."""
