/* gstclipmeta: being written */
