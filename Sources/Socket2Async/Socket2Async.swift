import Socket2
