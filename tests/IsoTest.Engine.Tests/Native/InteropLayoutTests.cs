using System.Runtime.CompilerServices;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Native;

/// <summary>Interop structs must match glibc's x86_64 layout (sizeof/offsetof from the C headers).</summary>
public sealed class InteropLayoutTests
{
    [Fact]
    public void MsgHdr_MatchesGlibc() => Assert.Equal(56, Unsafe.SizeOf<Libc.MsgHdr>());

    [Fact]
    public void CmsgHdr_MatchesGlibc() => Assert.Equal(16, Unsafe.SizeOf<Libc.CmsgHdr>());

    [Fact]
    public void EpollEvent_IsPackedOnX64() => Assert.Equal(12, Unsafe.SizeOf<Libc.EpollEventPacked>());

    [Fact]
    public void CmsgSpace_ForOneDescriptor_Is24() => Assert.Equal(24, Libc.CmsgSpace(sizeof(int)));

    [Fact]
    public void SocketPair_RoundTripsAMessageWithADescriptor()
    {
        var (a, b) = Fd.SocketPair(Libc.SOCK_SEQPACKET);
        using var sender = new AgentSocket(a);
        using var receiver = new AgentSocket(b);
        using var devNull = Fd.OpenDevNull();

        sender.Send(AgentSocket.Encode(["verb", "1", ""]), [devNull]);

        Assert.True(receiver.TryReceive(new byte[1024], out var fields, out var fds, out var closed));
        Assert.Equal(["verb", "1", ""], fields);
        Assert.Single(fds);
        Assert.False(closed);
        Assert.True(File.Exists($"/proc/self/fd/{fds[0]}"));
        Fd.CloseRaw(fds[0]);
    }

    [Fact]
    public void Send_AfterDispose_ThrowsInsteadOfWritingToAReusedDescriptor()
    {
        var (a, b) = Fd.SocketPair(Libc.SOCK_SEQPACKET);
        var closed = new AgentSocket(a);
        int number = closed.RawFd;
        closed.Dispose();
        b.Dispose();

        // The kernel hands out the lowest free number: the next socket most likely gets the same one.
        var (c, d) = Fd.SocketPair(Libc.SOCK_SEQPACKET);
        using var reused = new AgentSocket(c);
        using var peer = new AgentSocket(d);

        Assert.Throws<ObjectDisposedException>(() => closed.Send(AgentSocket.Encode(["kill"])));
        Assert.False(peer.TryReceive(new byte[64], out _, out _, out _), $"a message reached the socket now numbered {number}");
    }
}
