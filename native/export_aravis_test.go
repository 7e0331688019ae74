//go:build aravis && cgo

package native

// AravisBufferData is the address Aravis itself holds as the data of the
// ArvBuffer behind buffer id: where its receive thread writes that
// buffer's frames. 0 if g is not an Aravis grabber or id not one of its
// buffers.
func AravisBufferData(g Grabber, id BufferID) uintptr {
	d, ok := g.(*aravisDevice)
	if !ok {
		return 0
	}
	return d.bufferData(id)
}
