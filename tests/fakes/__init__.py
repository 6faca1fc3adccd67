"""Local fakes of outside services' documented APIs, for tests that must not leave loopback."""
