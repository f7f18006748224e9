// TCP repair (soccr's idea, amber's code): save a live connection from amber's copy of its socket
// and rebuild it in a new socket, without the peer seeing a packet it would not expect.
export * from './stream';
export { saveTcpStream, repairOn, repairOff, TcpRepairError, FIN_RECEIVED, FIN_SENT } from './save';
export { restoreTcpStream } from './restore';
export { SOL_TCP, TCP, tcpGet, tcpSet } from './kernel-calls';
export { FAKE_SEGMENT_MARK } from './fake-segment';
