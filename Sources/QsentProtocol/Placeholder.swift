// Work in progress: replaced as the module is written.
