"""Reference clients a partner or the app can take as they are: a verified local copy of the
risk list (``risk_copy``) and private look-ups (``private_check``)."""
