"""The analyst and police web console: a browser front end that is a client of the gateway only.

It signs in with the person's own analyst key, keeps it server-side in a session and makes
every call with it, so the gateway's roles, rate limits and audit stay the one source of
truth. It holds no database.
"""
