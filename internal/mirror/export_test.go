package mirror

// StreamAboveForTests lets tests stream small blobs from archives (their
// manifests stay far below it).
func StreamAboveForTests(o UnpackOptions, n int64) UnpackOptions {
	o.streamAboveForTests = n
	return o
}
