//! The generator's UDP sockets: connected to the server (so the kernel filters other sources and
//! `send` skips the address lookup), non-blocking, with large buffers for bursts.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// A non-blocking UDP socket bound to `port` (0: any) and connected to `server`.
pub fn open(server: SocketAddr, port: u16, buffer: usize) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(server),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // The kernel caps these at net.core.{r,w}mem_max; a smaller buffer only means earlier drops.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    socket.bind(&SocketAddr::new(any, port).into())?;
    socket.connect(&server.into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}
