"""The local runtime: the platform on one machine with moto as the embedded AWS."""
