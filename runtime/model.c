/* model: being written */
