"""The web console at /ui: sign-in sessions (session.py, signin.py), the routes (routes.py), and the
page's files (assets.py serves static/: plain ES modules and CSS, no build step)."""
