using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace IsoTest.Server.Http;

/// <summary>Docker's error body, <c>{"message": "..."}</c>, with the status code dockerd gives for the same failure.</summary>
internal static class DockerError
{
    public static Task WriteAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(Body(message));
    }

    /// <summary>dockerd's error body: <c>{"message":"..."}</c>, lower case.</summary>
    public static string Body(string message) => JsonSerializer.Serialize(new Dictionary<string, string> { ["message"] = message }, ServerJson.Options) + "\n";
}

/// <summary>
/// A failure that becomes a Docker error response: thrown anywhere below an endpoint, turned into
/// <c>{"message": ...}</c> with its status by <see cref="ErrorHandling"/>, so no endpoint words an error twice.
/// </summary>
internal sealed class DockerApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static DockerApiException NoSuchContainer(string id) => new(StatusCodes.Status404NotFound, $"No such container: {id}");

    public static DockerApiException NoSuchExec(string id) => new(StatusCodes.Status404NotFound, $"No such exec instance: {id}");

    public static DockerApiException NoSuchImage(string reference) => new(StatusCodes.Status404NotFound, $"No such image: {reference}");

    public static DockerApiException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public static DockerApiException Conflict(string message) => new(StatusCodes.Status409Conflict, message);
}

/// <summary>The one place an exception becomes a response; a bad request never takes the server down.</summary>
internal static class ErrorHandling
{
    public static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            var (status, message) = e switch
            {
                DockerApiException d => (d.Status, d.Message),
                JsonException j => (StatusCodes.Status400BadRequest, $"invalid JSON: {j.Message}"),
                BadHttpRequestException b => (b.StatusCode, b.Message),
                InvalidContainerSpecException s => (StatusCodes.Status400BadRequest, s.Message),
                ImagePullException p => (StatusCodes.Status404NotFound, p.Message),
                IsoTestException i => (StatusCodes.Status500InternalServerError, i.Message),
                _ => (StatusCodes.Status500InternalServerError, $"{e.GetType().Name}: {e.Message}"),
            };
            await DockerError.WriteAsync(context, status, message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away (a follow or wait it stopped listening to): nothing to answer.
        }
    }
}
