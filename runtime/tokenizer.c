/* tokenizer: being written */
