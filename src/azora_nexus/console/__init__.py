"""The live console: a static page (HTML, ES modules, CSS; no build step) served at `/console`.

The page talks to Nexus only through the public contract: `/health`, `/cache/stats`,
`/events/types`, Socket.IO, and the read routes under `/api`. Socket.IO's browser client is
vendored as `static/vendor/socket.io.min.js` (socket.io-client, MIT, its licence beside it) so
that an installed wheel serves it without Node; `tests/console` checks it is byte for byte the
version package.json pins. To update it: bump socket.io-client in package.json, `npm install`,
then copy `node_modules/socket.io-client/dist/socket.io.min.js` over the vendored file.
"""
