/* gstclipclassify: being written */
