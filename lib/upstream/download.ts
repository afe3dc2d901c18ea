import type { ByteSink } from "../image/base64_stream.ts";
import type { Deadline } from "./deadline.ts";
import { GenerationError } from "../failure/errors.ts";
import { clip } from "../shared/redact.ts";
import { MAX_IMAGE_BYTES } from "./answer_scanner.ts";
import { withHeaders } from "../params/headers.ts";
import { USER_AGENT } from "./request.ts";
import { bodyChunks, fetchOrFail, httpFailure, transportFailure } from "./http_failure.ts";

const MAX_REDIRECTS = 5;

/**
 * Fetches the image an answer points to, within the same deadline, and streams it into `sink`.
 * Redirects are followed by hand so that `apiHeaders` (the key, the extra headers) go only to
 * the API's own origin, at every hop.
 */
export async function downloadImage(
  imageUrl: string,
  apiOrigin: string,
  apiHeaders: Record<string, string>,
  deadline: Deadline,
  sink: ByteSink,
): Promise<void> {
  let url = parseHttpUrl(imageUrl);
  for (let redirects = 0;; redirects++) {
    const ownHeaders = { "User-Agent": USER_AGENT };
    const headers = url.origin === apiOrigin ? withHeaders(ownHeaders, apiHeaders) : ownHeaders;
    const response = await fetchOrFail("download", url, deadline, { headers, redirect: "manual" });
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      if (redirects === MAX_REDIRECTS) {
        throw new GenerationError(
          "download",
          `The image URL redirects more than ${MAX_REDIRECTS} times`,
        );
      }
      url = parseHttpUrl(location, url, "download");
      continue;
    }
    if (!response.ok) throw await httpFailure("download", response, deadline);
    await streamBody(response, deadline, sink);
    return;
  }
}

async function streamBody(response: Response, deadline: Deadline, sink: ByteSink): Promise<void> {
  let total = 0;
  try {
    for await (const chunk of bodyChunks(response.body)) {
      total += chunk.length;
      if (total > MAX_IMAGE_BYTES) {
        throw new GenerationError("download", `The image is larger than ${MAX_IMAGE_BYTES} bytes`);
      }
      await sink(chunk);
    }
  } catch (error) {
    throw transportFailure("download", error, deadline, "Reading the image download");
  }
  if (total === 0) throw new GenerationError("download", "The image download is empty");
}

/** An image URL from the answer (stage response) or from a redirect (stage download). */
function parseHttpUrl(
  text: string,
  base?: URL,
  stage: "response" | "download" = "response",
): URL {
  const url = URL.canParse(text, base) ? new URL(text, base) : null;
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new GenerationError(
      stage,
      `The image URL is not an http(s) URL: "${clip(text, 200)}"`,
    );
  }
  return url;
}
