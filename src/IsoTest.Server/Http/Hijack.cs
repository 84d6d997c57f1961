using Microsoft.AspNetCore.Http;

namespace IsoTest.Server.Http;

/// <summary>
/// The stream of an attach or exec start whose client did not ask for an upgrade: a 200 whose body is
/// the stream (clients that ask for <c>Upgrade: tcp</c> are served by <see cref="RawHijack"/>).
/// </summary>
internal static class Hijack
{
    public static async Task<Stream> StartPlainAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = StreamFrames.ContentType(ApiVersioning.Of(context));
        await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
        return context.Response.Body;
    }
}
