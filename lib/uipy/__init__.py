"""uipy: a uIP-style TCP/IP stack for MicroPython boards with SPI Ethernet."""
