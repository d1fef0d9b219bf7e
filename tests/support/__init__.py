"""Helpers shared by the test suites: real local servers, started and stopped per session or test."""
