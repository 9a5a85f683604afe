"""The public web gateway (aiohttp): demo page, widget files, /api/chat, /healthz."""
