"""The rules and the cluster logic; no request objects and no templates here."""
