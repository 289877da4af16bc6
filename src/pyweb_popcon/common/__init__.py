"""Helpers both sides use, with no policy in them: the configuration file
syntax (`conffile`), atomic files (`files`) and logging (`journal`)."""
