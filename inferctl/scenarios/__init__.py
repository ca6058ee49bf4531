"""What runs on the embedded stack (``inferctl/emulator``): the demo, the fault run and the burst. They stand on the
stack operations (``inferctl/stack``) and the emulator alike; neither of those imports them."""
