"""The operator's tool for the image-inference stack (``inferctl``): commands that work the same on a
deployed stack (``--stack NAME``) and on the embedded one (``--embedded``), the embedded stack itself
(``emulator``), and the demo's content (``demo``)."""
