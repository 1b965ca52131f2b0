/* labelset: being written */
