<?php
echo "Hello World";
