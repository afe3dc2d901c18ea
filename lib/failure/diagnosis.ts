/**
 * Turns the facts of a failure into a diagnosis a workflow can branch on: one ordered table of
 * rules, read by one small function, first match wins.
 *
 * The upstream rules are built from what real upstreams send, each with its source: OpenAI,
 * Azure OpenAI, OpenRouter, the LiteLLM proxy, the new-api, one-api and sub2api gateways (Chinese
 * and English), Volcengine Ark, SiliconFlow, Zhipu, Alibaba DashScope, Fireworks, Google Gemini,
 * xAI, Cloudflare (its error pages and AI Gateway)
 * and nginx (pages already reduced to their title). To teach the table a new gateway message, add
 * one line in the right section; the order of the sections is what keeps a 429
 * "insufficient_quota" a quota problem and a 404 "model_not_found" a model problem.
 */

import type { Category, Diagnosis, FailureFacts, Lang, LocalCause } from "./types.ts";

type FailureStage = FailureFacts["stage"];

/** An inclusive range of HTTP statuses, such as 500–599. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

export type StatusMatch = number | readonly number[] | StatusRange;

/** One sentence for a person: what happened and what to do, in each language. */
export interface Reason {
  readonly zh: string;
  readonly en: string;
}

/** What a rule looks at. Every condition given must hold; a rule without any matches anything. */
export interface RuleConditions {
  readonly stage?: FailureStage | readonly FailureStage[];
  readonly cause?: LocalCause;
  readonly status?: StatusMatch;
  readonly type?: RegExp;
  readonly code?: RegExp;
  readonly message?: RegExp;
}

export interface DiagnosisRule extends RuleConditions {
  readonly category: Category;
  readonly retryable: boolean;
  readonly reason: Reason;
  /** Which upstreams send what this rule matches, for the documentation. */
  readonly seenIn?: string;
  /** Where that was read: a repository and file, or a documentation page. */
  readonly source?: string;
}

interface CategoryInfo {
  readonly retryable: boolean;
  readonly meaning: Reason;
}

const CATEGORY_INFO: Readonly<Record<Category, CategoryInfo>> = {
  invalid_input: {
    retryable: false,
    meaning: { zh: "参数无效,请求未发送", en: "Invalid parameters, nothing was sent" },
  },
  auth_failed: {
    retryable: false,
    meaning: { zh: "密钥无效、过期或被拒绝访问", en: "Key invalid, expired or refused access" },
  },
  quota_exceeded: {
    retryable: false,
    meaning: { zh: "额度、余额或账单上限用尽", en: "Quota, balance or billing limit used up" },
  },
  rate_limited: {
    retryable: true,
    meaning: { zh: "限流(不是额度问题)", en: "Rate limited (not a quota problem)" },
  },
  content_rejected: {
    retryable: false,
    meaning: { zh: "提示词被内容安全审核拒绝", en: "Prompt rejected by content moderation" },
  },
  model_unavailable: {
    retryable: false,
    meaning: {
      zh: "模型不存在、无权使用或网关无可用渠道",
      en: "Model unknown, not allowed, or no gateway channel for it",
    },
  },
  bad_request: {
    retryable: false,
    meaning: { zh: "上游拒绝了请求参数", en: "The upstream rejected the request parameters" },
  },
  endpoint_not_found: {
    retryable: false,
    meaning: {
      zh: "接口地址不存在(base_url 错误或漏了 /v1)",
      en: "No such endpoint (wrong base_url or missing /v1)",
    },
  },
  upstream_failure: {
    retryable: true,
    meaning: {
      zh: "上游或网关故障、过载或超时",
      en: "Upstream or gateway failed, overloaded or timed out",
    },
  },
  timeout: {
    retryable: true,
    meaning: { zh: "超过 timeout_ms 仍未完成", en: "Not finished within timeout_ms" },
  },
  network_error: {
    retryable: true,
    meaning: {
      zh: "无法连接(DNS、拒绝、重置、TLS),或连接在调用中途中断",
      en: "Could not connect (DNS, refused, reset, TLS), or the connection dropped mid-call",
    },
  },
  bad_response: {
    retryable: true,
    meaning: { zh: "成功状态但没有可用的图片", en: "Success status but no usable image" },
  },
  download_failed: {
    retryable: true,
    meaning: { zh: "下载返回的图片链接失败", en: "Downloading the returned image URL failed" },
  },
  save_failed: {
    retryable: false,
    meaning: { zh: "无法写入 output_dir", en: "Could not write to output_dir" },
  },
  cancelled: {
    retryable: false,
    meaning: { zh: "被信号或调用方取消", en: "Cancelled by a signal or the caller" },
  },
  internal_error: {
    retryable: false,
    meaning: {
      zh: "img2-generate 自身出错(不是上游的问题)",
      en: "A fault in img2-generate itself, not in the upstream",
    },
  },
};

export interface CategoryEntry extends CategoryInfo {
  readonly category: Category;
}

/** Every category with its retryable flag and meaning, in the order of the documentation. */
export const CATEGORIES: readonly CategoryEntry[] = (Object.keys(CATEGORY_INFO) as Category[]).map((
  category,
) => ({ category, ...CATEGORY_INFO[category] }));

function isRetryable(category: Category): boolean {
  return CATEGORY_INFO[category].retryable;
}

const REASONS = {
  cancelled: {
    zh:
      "调用被中断(SIGINT、SIGTERM、SIGHUP、SIGQUIT 或调用方取消),未保存任何文件;如仍需要,重新发起即可。",
    en:
      "The call was cancelled (SIGINT, SIGTERM, SIGHUP, SIGQUIT or the caller) and nothing was saved; start it again if it is still needed.",
  },
  timeout: {
    zh:
      "在 timeout_ms 内没有完成(连接、等待生成或读取图片);图片模型可能较慢,可加大 timeout_ms 后重试。",
    en:
      "The call did not finish within timeout_ms (connecting, waiting for the image or reading it); image models can be slow, so retry with a larger timeout_ms.",
  },
  invalidInput: {
    zh: "输入参数无效,请求未发送;按 error 字段修正参数后再调用。",
    en:
      "The input parameters are invalid and nothing was sent; fix them as the error field says and call again.",
  },
  saveFailed: {
    zh: "无法在 output_dir 中创建或写入图片文件;检查目录路径、写权限和磁盘空间。",
    en:
      "The image file could not be created or written in output_dir; check the path, write permission and free disk space.",
  },
  downloadNetwork: {
    zh: "下载上游返回的图片链接时网络出错;稍后重试,或改用 response_format=b64_json。",
    en:
      "The network failed while downloading the image URL the upstream returned; retry later, or use response_format b64_json.",
  },
  downloadRefused: {
    zh:
      "上游返回的图片链接无法下载(图床返回错误,链接可能已过期);重新生成,或改用 response_format=b64_json。",
    en:
      "The image URL the upstream returned could not be downloaded (the image host answered with an error, the link may have expired); generate again, or use response_format b64_json.",
  },
  internalFault: {
    zh: "img2-generate 自身出错(程序缺陷),与上游和密钥无关;原样重试无济于事,请报告 error 字段。",
    en:
      "The img2-generate program itself failed (a bug), not the upstream or the key; retrying the same call will not help, so report the error field.",
  },
  connectionDropped: {
    zh:
      "连接已建立、请求已发出,但连接在返回结果前中断(被关闭或重置);图片可能已生成并计费;检查网络、代理或网关后重试。",
    en:
      "The connection was made and the request sent, then it dropped before the answer was complete (closed or reset); the image may have been generated and billed; check the network, proxy or gateway, then retry.",
  },
  network: {
    zh:
      "无法连接到 base_url(DNS 解析失败、连接被拒绝或重置、TLS 握手失败);检查网络、代理设置和 base_url 的主机名后重试。",
    en:
      "Could not reach base_url (DNS lookup failed, connection refused or reset, or TLS handshake failed); check the network, the proxy settings and the host in base_url, then retry.",
  },
  undecodableImage: {
    zh:
      "上游返回的图片数据无法解码(base64 损坏,或不是 PNG/JPEG/WebP/GIF);多为上游临时异常,可以重试。",
    en:
      "The image data the upstream returned could not be decoded (broken base64, or not PNG/JPEG/WebP/GIF); usually a passing upstream fault, so retry.",
  },
  noUsableImage: {
    zh:
      "上游返回了成功状态,但响应里没有可用的图片;多为上游临时异常,可以重试,若一直如此,检查 base_url 是否指向 API(通常以 /v1 结尾)。",
    en:
      "The upstream answered with a success status but no usable image; usually a passing upstream fault, so retry, and if it persists check that base_url points at the API (it usually ends in /v1).",
  },
  safetySystem: {
    zh: "提示词被上游的内容安全系统拒绝;修改提示词后再试,原样重试不会成功。",
    en:
      "The upstream's safety system rejected the prompt; reword it, since the same prompt will be rejected again.",
  },
  gatewaySensitiveWords: {
    zh: "网关的敏感词检查拦截了提示词;修改提示词后再试,原样重试不会成功。",
    en:
      "The gateway's sensitive-word check blocked the prompt; reword it, since the same prompt will be blocked again.",
  },
  billingRequired: {
    zh:
      "上游账户没有开通计费,或因达到消费上限、欠费而被暂停;在服务商控制台开通计费或处理账单后再试,单纯重试不会恢复。",
    en:
      "The upstream account has no billing set up, or is suspended for reaching its spending limit or unpaid invoices; set up billing or settle the account in the provider's console, retrying alone will not help.",
  },
  upstreamQuota: {
    zh: "上游账户的额度或账单上限已用尽;充值或提高账单上限后再试,单纯重试不会恢复。",
    en:
      "The upstream account has run out of credit or reached its billing limit; add credit or raise the limit, retrying alone will not help.",
  },
  gatewayBudget: {
    zh:
      "网关为这个密钥、用户或团队设定的预算或用量上限已用尽;在网关后台提高预算或等待周期重置,单纯重试不会恢复。",
    en:
      "The budget or usage cap the gateway sets for this key, user or team is used up; raise it in the gateway or wait for its period to reset, retrying alone will not help.",
  },
  gatewayQuota: {
    zh: "网关的用户余额或令牌额度不足;在网关后台充值或提高该令牌的额度后再试。",
    en:
      "The gateway user's balance or the token's quota is not enough; top up or raise the token's quota in the gateway console, then call again.",
  },
  paymentRequired: {
    zh: "上游要求付费(HTTP 402),账户余额不足;充值后再试。",
    en:
      "The upstream asks for payment (HTTP 402) because the balance is too low; top up, then call again.",
  },
  orgVerification: {
    zh:
      "上游要求先完成组织验证才能使用该模型;在 OpenAI 控制台完成 Verify Organization 后再试(生效可能需要约 15 分钟)。",
    en:
      "The upstream requires a verified organization for this model; complete Verify Organization in the OpenAI console and try again (it can take about 15 minutes to apply).",
  },
  gatewayNoChannel: {
    zh:
      "网关在当前分组下没有这个模型的可用渠道;换用网关支持的 model,或请网关管理员为该分组配置渠道。",
    en:
      "The gateway has no available channel for this model in the token's group; use a model the gateway serves, or ask its administrator to set up a channel.",
  },
  noProviderForModel: {
    zh: "网关没有能提供这个模型的上游(或都不满足路由要求);换用其他 model,或放宽路由与提供商设置。",
    en:
      "The gateway has no provider that serves this model (or none that meets the routing settings); use another model, or relax the routing and provider settings.",
  },
  deploymentNotFound: {
    zh:
      "Azure OpenAI 上没有这个部署名;base_url 中的部署名(或 model)必须与 Azure 门户中的部署名一致,新建的部署需等几分钟生效。",
    en:
      "Azure OpenAI has no deployment by this name; the deployment in base_url (or model) must match the one in the Azure portal, and a new deployment takes a few minutes to appear.",
  },
  modelNotActivated: {
    zh: "账户尚未开通这个模型,或当前套餐不含它;在服务商控制台开通该模型后再试。",
    en:
      "The account has not activated this model, or its plan does not include it; activate the model in the provider's console, then call again.",
  },
  tokenModelForbidden: {
    zh: "该令牌不允许使用所请求的模型;在网关后台放开该令牌的模型限制,或换用允许的 model。",
    en:
      "This token is not allowed to use the requested model; lift the token's model restriction in the gateway console, or use an allowed model.",
  },
  modelPriceNotSet: {
    zh: "网关尚未为该模型配置倍率或价格,暂时无法使用;请网关管理员配置,或换用其他 model。",
    en:
      "The gateway has no ratio or price set for this model, so it cannot be used yet; ask its administrator to set one, or use another model.",
  },
  modelNotFound: {
    zh: "模型不存在,或当前密钥无权使用该模型;检查 model 名称和账户的模型权限。",
    en:
      "The model does not exist or this key may not use it; check the model name and the account's model access.",
  },
  modelRetired: {
    zh:
      "上游说这个模型不存在,它是已退役的模型(dall-e-2 与 dall-e-3 于 2026-05-12 退役,gpt-image-1 于 2026-10-23 关停);改用 gpt-image-2 或 gpt-image-2.5 系列。",
    en:
      "The upstream says this model does not exist, and it is a retired one (dall-e-2 and dall-e-3 retired on 2026-05-12, gpt-image-1 shut down on 2026-10-23); use gpt-image-2 or the gpt-image-2.5 family instead.",
  },
  notInCompatibleMode: {
    zh: "上游的 OpenAI 兼容接口不提供这个模型;换用兼容接口支持的图片模型,或改用服务商的原生接口。",
    en:
      "The upstream's OpenAI-compatible endpoint does not serve this model; use an image model it serves there, or the provider's own API.",
  },
  notAnImageModel: {
    zh: "上游不接受这个 model 作为图片模型;改用上游列出的图片模型名称。",
    en:
      "The upstream does not accept this model for image generation; use one of the image models it lists.",
  },
  regionUnsupported: {
    zh: "上游不支持当前所在的国家或地区;改经受支持地区的网络或网关访问。",
    en:
      "The upstream does not serve the country or region this request comes from; go through a network or gateway in a supported region.",
  },
  firewallBlock: {
    zh:
      "请求被 base_url 前面的 Cloudflare 防火墙拦截(不是密钥问题);请网关管理员放行本机出口 IP,或换一个网络出口。",
    en:
      "The Cloudflare firewall in front of base_url blocked the request (not a key problem); ask the gateway's administrator to allow this machine's address, or use another network.",
  },
  apiKeyRejected: {
    zh: "API 密钥无效、缺失或所属账户已停用;检查 api_key 是否正确,且与 base_url 属于同一服务。",
    en:
      "The API key is invalid, missing or belongs to a deactivated account; check api_key and that it belongs to the service at base_url.",
  },
  gatewayTokenRejected: {
    zh:
      "网关拒绝了这个令牌(无效、已过期、已禁用或账户被封禁);在网关后台检查令牌和账户状态,或换用有效的 api_key。",
    en:
      "The gateway refused this token (invalid, expired, disabled, or the account is banned); check the token and account in the gateway console, or use a valid api_key.",
  },
  accountLocked: {
    zh: "服务商账户未激活、不存在或已被锁定;登录服务商控制台处理账户状态,或联系其客服。",
    en:
      "The provider account is inactive, unknown or locked; sort out the account in the provider's console or with its support.",
  },
  unauthorized: {
    zh: "上游拒绝了身份验证(HTTP 401);检查 api_key 是否正确、是否已过期。",
    en:
      "The upstream refused the credentials (HTTP 401); check that api_key is right and has not expired.",
  },
  forbidden: {
    zh: "上游拒绝访问(HTTP 403);检查 api_key 的权限、分组或 IP 白名单。",
    en:
      "The upstream refused access (HTTP 403); check the key's permissions, group or IP allowlist.",
  },
  gatewaySaturated: {
    zh:
      "网关报告当前分组的上游负载已饱和;稍后重试或换用其他分组;new-api 会把上游的每个 429 都改写成这句话,若一直如此,上游账户也可能是额度用尽。",
    en:
      "The gateway reports its upstream for this group saturated; retry later or use another group; new-api rewrites every upstream 429 into this text, so if it persists the upstream account may also be out of quota.",
  },
  rateLimited: {
    zh: "请求过于频繁,被上游或网关限流;等待 retry_after_ms(若有)或稍后重试。",
    en:
      "Too many requests, the upstream or gateway is rate limiting; wait retry_after_ms when given, or a little, then retry.",
  },
  invalidUrl: {
    zh: "上游不认识这个接口地址;检查 base_url(通常应以 /v1 结尾)。",
    en: "The upstream does not know this endpoint; check base_url (it usually ends in /v1).",
  },
  endpointMissing: {
    zh: "接口地址不存在或不接受 POST(HTTP 404/405),base_url 可能写错或漏了 /v1;检查 base_url。",
    en:
      "No such endpoint, or it does not accept POST (HTTP 404/405); base_url may be wrong or miss /v1, so check it.",
  },
  redirected: {
    zh:
      "base_url 被重定向到别的地址(HTTP 3xx,常见于 http 改 https 或域名变更);把 base_url 改成 error 中给出的最终地址。",
    en:
      "The base_url redirects elsewhere (HTTP 3xx, often http to https or a moved host); set base_url to the final address given in the error.",
  },
  notImplemented: {
    zh: "上游或网关没有实现图片生成接口;换一个支持 /images/generations 的 base_url。",
    en:
      "The upstream or gateway does not implement image generation; use a base_url that serves /images/generations.",
  },
  badParams: {
    zh:
      "上游拒绝了请求参数(如 size、quality 或不支持的字段);按 upstream_error_message 修正参数后再试。",
    en:
      "The upstream rejected the request parameters (such as size, quality or an unsupported field); fix them as upstream_error_message says, then call again.",
  },
  bodyTooLarge: {
    zh: "请求体超过了上游或代理允许的大小(HTTP 413);缩短 prompt 或减少 extra_body 后再试。",
    en:
      "The request body is larger than the upstream or its proxy accepts (HTTP 413); shorten the prompt or extra_body, then call again.",
  },
  batchFileTooLarge: {
    zh: "批处理输入文件超过了上游允许的大小(OpenAI 每个文件 200 MB);减少每个批次的任务数后再试。",
    en:
      "The batch input file is larger than the provider accepts (OpenAI: 200 MB a file); put fewer jobs in each batch, then run again.",
  },
  batchLineRefused: {
    zh:
      "Batch API 在校验时拒绝了这个任务在批处理输入文件中的那一行(JSON、custom_id、url 或 model 不符合要求),任务没有执行;按 upstream_error_message 修正后用 --retry-failed 重新运行。",
    en:
      "The Batch API refused this job's line of the batch input file while validating it (its JSON, custom_id, url or model), and the job was not run; fix what upstream_error_message says, then run again with --retry-failed.",
  },
  enqueuedTokens: {
    zh:
      "组织在 Batch API 中这个模型的排队 token 上限已满(token_limit_exceeded);等正在进行的批次完成一些后再试,或把任务分成更小的批次。",
    en:
      "The organization's limit of tokens enqueued in the Batch API for this model is reached (token_limit_exceeded); retry once some of its in-progress batches have completed, or send smaller batches.",
  },
  storedFilesQuota: {
    zh:
      "上游存储文件的配额已满(Azure OpenAI 不过期的文件最多 500 个,OpenAI 每个组织 100 GB);删除旧批次的文件(GET /files、DELETE /files/{id})后再试。",
    en:
      "The provider's quota of stored files is reached (Azure OpenAI: 500 files without expiry; OpenAI: 100 GB an organization); delete the files of old batches (GET /files, DELETE /files/{id}), then run again.",
  },
  upstreamRequestTimeout: {
    zh: "上游在等待请求时超时(HTTP 408);稍后重试。",
    en: "The upstream timed out waiting for the request (HTTP 408); retry later.",
  },
  gatewayCutLongGeneration: {
    zh:
      "网关在等待上游时超时断开了连接(HTTP 524/504:Cloudflare 约等 100 秒,nginx 默认 60 秒),图片生成往往更久;上游可能仍在生成并照常计费,原样重试多半再次被切断;请使用 stream: true 让数据持续流动,或请网关管理员加长超时。",
    en:
      "The gateway cut the call while the upstream was still working (HTTP 524/504: Cloudflare waits about 100 s, nginx 60 s by default), and image generation often takes longer; the upstream may still finish and bill the image, and the same call will likely be cut again, so use stream: true to keep bytes flowing, or ask for a longer gateway timeout.",
  },
  cloudflareOrigin: {
    zh: "网关前的 Cloudflare 没能从源站取得响应(52x,如 524 源站超时);上游或网关临时故障,稍后重试。",
    en:
      "Cloudflare in front of the gateway got no answer from the origin (52x, such as 524 for an origin timeout); a passing upstream or gateway fault, retry later.",
  },
  upstreamFailed: {
    zh: "图片模型上游服务失败或临时不可用;不是本地脚本问题。",
    en:
      "The image model's upstream service failed or is temporarily unavailable; this is not a local problem, retry later.",
  },
  unclassified: {
    zh: "上游返回了无法归类的错误;查看 upstream_error_message,稍后重试。",
    en:
      "The upstream returned an error that fits no known pattern; read upstream_error_message and retry later.",
  },
} as const satisfies Record<string, Reason>;

type RuleSource = Omit<DiagnosisRule, "retryable">;

// Where each upstream's answers were read.
const SOURCES = {
  openai: "platform.openai.com/docs/guides/error-codes",
  openaiImages:
    "platform.openai.com/docs/guides/image-generation (moderation, organization verification)",
  azure: "learn.microsoft.com/azure/ai-services/openai/concepts/content-filter; …/reference",
  openrouter: "openrouter.ai/docs/api/reference/errors-and-debugging",
  litellm: "BerriAI/litellm litellm/proxy/_types.py (ProxyErrorTypes), proxy/route_llm_request.py",
  newApi: "QuantumNous/new-api types/error.go, i18n/locales/{zh-CN,en}.yaml, middleware/auth.go",
  newApi429: "QuantumNous/new-api controller/relay.go (every upstream 429 rewritten)",
  oneApi: "songquanpeng/one-api middleware/auth.go, relay/controller/helper.go",
  sub2api:
    "Wei-Shaw/sub2api backend/internal/server/middleware/api_key_auth.go, service/subscription_service.go, handler/openai_gateway_handler.go",
  ark: "volcengine.com/docs/82379/1299023 (方舟公共错误码)",
  siliconflow: "docs.siliconflow.cn/cn/faqs/error-code",
  zhipu: "docs.bigmodel.cn/cn/faq/api-code",
  dashscope:
    "help.aliyun.com/zh/model-studio/error-code (data_inspection_failed, model_not_supported)",
  dashscopeIssues: "camel-ai/owl#432, QwenLM/qwen-code#3145 (data_inspection_failed as sent)",
  fireworks:
    "Fireworks 412 PRECONDITION_FAILED as relayed in pollinations/pollinations#12136 and amd/gaia#3766",
  gemini:
    "Gemini API 400 INVALID_ARGUMENT as reported in ammaarreshi/openjourney#1 and google-gemini/cookbook#135",
  geminiSafety:
    "ai.google.dev/api/generate-content#FinishReason (IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION); CherryHQ/cherry-studio#3876; a gateway's channel_error body quoted in a client's moderation notes",
  xaiCredits:
    "xAI {code, error} answers as reported in griptape-ai/griptape-nodes-engine#1079 (403), continuedev/continue#12670 (403), continuedev/continue#10373 (429)",
  together: "Together 402 credit_limit as reported in expectedparrot/edsl#2098",
  xai: "xAI 400 {code, error} as reported in obot-platform/obot#2995 and rikkahub/rikkahub#1602",
  geminiKey:
    "Gemini's OpenAI-compatible endpoint: 400 INVALID_ARGUMENT \"API key not valid. Please pass a valid API key.\" in a one-element list, as its clients' tests replay it",
  openaiRetired:
    "OpenAI deprecations: dall-e-2, dall-e-3 retired 2026-05-12; gpt-image-1 shut down 2026-10-23",
  cloudflare:
    "developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors",
  cloudflareFirewall: "developers.cloudflare.com/waf (block and challenge pages)",
  aiGateway: "developers.cloudflare.com/ai-gateway/guardrails/set-up-guardrail",
  nginx: "nginx src/http/ngx_http_special_response.c",
  http: "RFC 9110 §15 (status codes)",
  openaiBatchLines:
    "platform.openai.com/docs/guides/batch (errors.data codes), as listed in stdapi-ai/stdapi.ai#240 with BatchError(code=invalid_json_line, line=1)",
  openaiBatchTokens:
    "openai/openai-python#2084 (BatchError token_limit_exceeded, Enqueued token limit reached, line None)",
  openaiFiles:
    "OpenAI POST /files 400 invalid_request_error as reported in bespokelabsai/curator#111 (File is too large.) and #189 (file storage quota)",
  azureFiles:
    "Azure OpenAI POST /files 400 quotaExceeded as reported in Azure/azure-sdk-for-java#47401",
} as const;

// Local facts come first: what this side saw outranks any text. After the first block only stage
// "request" is left, so the upstream rules need not repeat it. Within the upstream part, specific
// codes and texts come before status families; content and money come before models, models
// before credentials, and all of them before rate limits, so that a 429 or a 403 that says why is
// read by what it says.
const RULE_SOURCES: readonly RuleSource[] = [
  // Local facts
  { cause: "internal", category: "internal_error", reason: REASONS.internalFault },
  { cause: "cancelled", category: "cancelled", reason: REASONS.cancelled },
  { cause: "timeout", category: "timeout", reason: REASONS.timeout },
  { stage: "input", category: "invalid_input", reason: REASONS.invalidInput },
  { stage: "save", category: "save_failed", reason: REASONS.saveFailed },
  {
    stage: "download",
    cause: "network",
    category: "download_failed",
    reason: REASONS.downloadNetwork,
  },
  { stage: "download", category: "download_failed", reason: REASONS.downloadRefused },
  { cause: "dropped", category: "network_error", reason: REASONS.connectionDropped },
  { cause: "network", category: "network_error", reason: REASONS.network },
  { stage: "decode", category: "bad_response", reason: REASONS.undecodableImage },
  { stage: "response", category: "bad_response", reason: REASONS.noUsableImage },

  // Content moderation, whatever the status
  {
    code:
      /^(moderation_blocked|content_policy_violation|content_filter|contentFilter|ResponsibleAIPolicyViolation)$/i,
    seenIn: "OpenAI, Azure OpenAI",
    source: `${SOURCES.openaiImages}; ${SOURCES.azure}`,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    message: /safety system|content management policy|ContentPolicyViolationError/i,
    seenIn: "OpenAI, Azure OpenAI, LiteLLM",
    source: `${SOURCES.openaiImages}; ${SOURCES.azure}; ${SOURCES.litellm}`,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    message: /\b(was|were) flagged for\b|requires moderation/i,
    seenIn: "OpenRouter",
    source: SOURCES.openrouter,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    code:
      /^((Input|Output)(Text|Image)SensitiveContentDetected|(Input|Output)(Text|Image)RiskDetection|SensitiveContentDetected)$/,
    seenIn: "Volcengine Ark",
    source: SOURCES.ark,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    code: /^1301$/,
    seenIn: "Zhipu",
    source: SOURCES.zhipu,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    message: /不安全或敏感内容|可能包含敏感信息/,
    seenIn: "Zhipu, Volcengine Ark",
    source: `${SOURCES.zhipu}; ${SOURCES.ark}`,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    code: /^(data_inspection_failed|DataInspectionFailed)$/i,
    seenIn: "Alibaba DashScope",
    source: `${SOURCES.dashscope}; ${SOURCES.dashscopeIssues}`,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    message: /\bDataInspectionFailed\b|data may contain inappropriate content/i,
    seenIn: "Alibaba DashScope",
    source: `${SOURCES.dashscope}; ${SOURCES.dashscopeIssues}`,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    // A relay answers these with 500 or 400 alike: the words decide, whatever the status.
    message:
      /\bIMAGE_(SAFETY|PROHIBITED_CONTENT|RECITATION)\b|blocked due to safety policy|blocked due to SAFETY\b/i,
    seenIn: "Google Gemini, relays of it",
    source: SOURCES.geminiSafety,
    category: "content_rejected",
    reason: REASONS.safetySystem,
  },
  {
    code: /^(2016|2017)$/,
    seenIn: "Cloudflare AI Gateway",
    source: SOURCES.aiGateway,
    category: "content_rejected",
    reason: REASONS.gatewaySensitiveWords,
  },
  {
    code: /^(sensitive_words_detected|prompt_blocked|violation_fee\.[\w.]+)$/i,
    seenIn: "new-api",
    source: SOURCES.newApi,
    category: "content_rejected",
    reason: REASONS.gatewaySensitiveWords,
  },
  {
    message: /sensitive words detected|敏感词|blocked due to security configurations/i,
    seenIn: "new-api, Cloudflare AI Gateway",
    source: `${SOURCES.newApi}; ${SOURCES.aiGateway}`,
    category: "content_rejected",
    reason: REASONS.gatewaySensitiveWords,
  },

  // Money: quota, balance, budget, billing, daily and monthly caps, whatever the status
  {
    // Azure's camel-case code, not Ark's QuotaExceeded below, and only about files.
    code: /^quotaExceeded$/,
    message: /\bfiles\b/i,
    seenIn: "Azure OpenAI",
    source: SOURCES.azureFiles,
    category: "quota_exceeded",
    reason: REASONS.storedFilesQuota,
  },
  {
    message: /exceeded your file storage quota/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiFiles,
    category: "quota_exceeded",
    reason: REASONS.storedFilesQuota,
  },
  {
    code: /^(insufficient_quota|billing_hard_limit_reached|billing_not_active)$/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    type: /^insufficient_quota$/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    message: /exceeded your current quota|billing hard limit/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    message:
      /\bis suspended, possibly due to reaching the monthly spending limit|failure to pay past invoices/i,
    seenIn: "Fireworks",
    source: SOURCES.fireworks,
    category: "quota_exceeded",
    reason: REASONS.billingRequired,
  },
  {
    message:
      /only accessible to billed users|without a billing account linked|billing (is not|must be|to be) enabled/i,
    seenIn: "Google Gemini",
    source: SOURCES.gemini,
    category: "quota_exceeded",
    reason: REASONS.billingRequired,
  },
  {
    // xAI sends these with 403 and 429: neither a key problem nor a rate limit.
    message:
      /doesn't have any credits|have run out of credits|has either used all available credits or reached its monthly spending limit/i,
    seenIn: "xAI",
    source: SOURCES.xaiCredits,
    category: "quota_exceeded",
    reason: REASONS.billingRequired,
  },
  {
    type: /^credit_limit$/i,
    seenIn: "Together",
    source: SOURCES.together,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    message: /^Credit limit exceeded\b/i,
    seenIn: "Together",
    source: SOURCES.together,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    code: /^(AccountOverdueError|QuotaExceeded|SetLimitExceeded)$/,
    seenIn: "Volcengine Ark",
    source: SOURCES.ark,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    code: /^(30001|1113|1304|1308|1309|1310)$/,
    seenIn: "SiliconFlow, Zhipu",
    source: `${SOURCES.siliconflow}; ${SOURCES.zhipu}`,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    message:
      /overdue balance|balance is insufficient|insufficient (account )?(balance|credits)|requires more credits|账户已欠费|已达今日调用次数限额|使用上限/i,
    seenIn: "Volcengine Ark, SiliconFlow, OpenRouter, sub2api, Zhipu",
    source:
      `${SOURCES.ark}; ${SOURCES.siliconflow}; ${SOURCES.openrouter}; ${SOURCES.sub2api}; ${SOURCES.zhipu}`,
    category: "quota_exceeded",
    reason: REASONS.upstreamQuota,
  },
  {
    type: /^(budget_exceeded|billing_error)$/i,
    seenIn: "LiteLLM, sub2api",
    source: `${SOURCES.litellm}; ${SOURCES.sub2api}`,
    category: "quota_exceeded",
    reason: REASONS.gatewayBudget,
  },
  {
    message: /budget has been exceeded|ExceededBudget|over budget\b/i,
    seenIn: "LiteLLM",
    source: SOURCES.litellm,
    category: "quota_exceeded",
    reason: REASONS.gatewayBudget,
  },
  {
    code:
      /^(INSUFFICIENT_BALANCE|USAGE_LIMIT_EXCEEDED|(DAILY|WEEKLY|MONTHLY)_LIMIT_EXCEEDED|SUBSCRIPTION_(NOT_FOUND|INVALID|EXPIRED|SUSPENDED))$/,
    seenIn: "sub2api",
    source: SOURCES.sub2api,
    category: "quota_exceeded",
    reason: REASONS.gatewayBudget,
  },
  {
    message:
      /(daily|weekly|monthly) usage limit exceeded|subscription (is invalid or expired|has expired|is suspended)/i,
    seenIn: "sub2api",
    source: SOURCES.sub2api,
    category: "quota_exceeded",
    reason: REASONS.gatewayBudget,
  },
  {
    code:
      /^(insufficient_user_quota|pre_consume_token_quota_failed|entitlement_(required|inactive|daily_limit_exceeded|total_limit_exceeded))$/i,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "quota_exceeded",
    reason: REASONS.gatewayQuota,
  },
  {
    message: /额度不足|额度已用尽|预扣费额度失败|余额不足/,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "quota_exceeded",
    reason: REASONS.gatewayQuota,
  },
  {
    message: /quota is not enough|insufficient (user )?quota|quota is exhausted/i,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "quota_exceeded",
    reason: REASONS.gatewayQuota,
  },

  // Model: not found, not allowed, not activated, no channel or endpoint for it. Gateway texts
  // first, since new-api sends its "no channel" answers with code model_not_found too.
  {
    message: /must be verified to use the model/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiImages,
    category: "model_unavailable",
    reason: REASONS.orgVerification,
  },
  {
    message: /无可用渠道|可用渠道失败|no available channel|available channels? for model/i,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "model_unavailable",
    reason: REASONS.gatewayNoChannel,
  },
  {
    code: /^get_channel_failed$/i,
    seenIn: "new-api",
    source: SOURCES.newApi,
    category: "model_unavailable",
    reason: REASONS.gatewayNoChannel,
  },
  {
    message: /^no (allowed providers are available|endpoints found)\b/i,
    seenIn: "OpenRouter",
    source: SOURCES.openrouter,
    category: "model_unavailable",
    reason: REASONS.noProviderForModel,
  },
  {
    message:
      /无权(访问|使用)(任何)?模型|has no access to (any )?models?\b|not allowed to access model/i,
    seenIn: "new-api, one-api, LiteLLM",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}; ${SOURCES.litellm}`,
    category: "model_unavailable",
    reason: REASONS.tokenModelForbidden,
  },
  {
    type: /^(key|team|user|org|project)_model_access_denied$/i,
    seenIn: "LiteLLM",
    source: SOURCES.litellm,
    category: "model_unavailable",
    reason: REASONS.tokenModelForbidden,
  },
  {
    code: /^model_price_error$/i,
    seenIn: "new-api",
    source: SOURCES.newApi,
    category: "model_unavailable",
    reason: REASONS.modelPriceNotSet,
  },
  {
    message: /倍率或价格未配置|ratio or price not set/i,
    seenIn: "new-api",
    source: SOURCES.newApi,
    category: "model_unavailable",
    reason: REASONS.modelPriceNotSet,
  },
  {
    code: /^DeploymentNotFound$/i,
    seenIn: "Azure OpenAI",
    source: SOURCES.azure,
    category: "model_unavailable",
    reason: REASONS.deploymentNotFound,
  },
  {
    code: /^(ModelNotOpen|1311|1220)$/,
    seenIn: "Volcengine Ark, Zhipu",
    source: `${SOURCES.ark}; ${SOURCES.zhipu}`,
    category: "model_unavailable",
    reason: REASONS.modelNotActivated,
  },
  {
    message:
      /\b(dall-e-[23]|gpt-image-1)(?![\w.-]).{0,40} does not exist|does not exist.{0,40}\b(dall-e-[23]|gpt-image-1)(?![\w.-])/i,
    seenIn: "OpenAI",
    source: `${SOURCES.openai}; ${SOURCES.openaiRetired}`,
    category: "model_unavailable",
    reason: REASONS.modelRetired,
  },
  {
    code: /^model_not_supported$/i,
    seenIn: "Alibaba DashScope",
    source: SOURCES.dashscope,
    category: "model_unavailable",
    reason: REASONS.notInCompatibleMode,
  },
  {
    message: /^Unsupported model .{1,200} for OpenAI compatibility mode/i,
    seenIn: "Alibaba DashScope",
    source: SOURCES.dashscope,
    category: "model_unavailable",
    reason: REASONS.notInCompatibleMode,
  },
  {
    code: /^(model_not_found|InvalidEndpointOrModel\.NotFound|20012|1211)$/i,
    seenIn: "OpenAI, new-api, Volcengine Ark, SiliconFlow, Zhipu",
    source:
      `${SOURCES.openai}; ${SOURCES.newApi}; ${SOURCES.ark}; ${SOURCES.siliconflow}; ${SOURCES.zhipu}`,
    category: "model_unavailable",
    reason: REASONS.modelNotFound,
  },
  {
    message:
      /does not exist or you do not have access to it|the (requested )?model .{1,120} does not exist|\bmodel does not exist\b|invalid model name passed in model=|模型不存在/i,
    seenIn: "OpenAI, SiliconFlow, LiteLLM, Zhipu",
    source: `${SOURCES.openai}; ${SOURCES.siliconflow}; ${SOURCES.litellm}; ${SOURCES.zhipu}`,
    category: "model_unavailable",
    reason: REASONS.modelNotFound,
  },
  {
    message: /^Invalid value: '[^']*'\. Supported values are: .*'(gpt-image|dall-e)/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "model_unavailable",
    reason: REASONS.notAnImageModel,
  },
  {
    code: /^OperationNotSupported$/i,
    seenIn: "Azure OpenAI",
    source: SOURCES.azure,
    category: "model_unavailable",
    reason: REASONS.notAnImageModel,
  },

  // Credentials and access: only what is about the key, the account or where it calls from
  {
    code: /^unsupported_country_region_territory$/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "auth_failed",
    reason: REASONS.regionUnsupported,
  },
  {
    message: /country, region,? or territory not supported/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "auth_failed",
    reason: REASONS.regionUnsupported,
  },
  {
    message:
      /attention required! \| cloudflare|sorry, you have been blocked|^just a moment\.\.\.$/i,
    seenIn: "Cloudflare",
    source: SOURCES.cloudflareFirewall,
    category: "auth_failed",
    reason: REASONS.firewallBlock,
  },
  {
    code:
      /^(invalid_api_key|account_deactivated|AuthenticationError|INVALID_API_KEY|API_KEY_(REQUIRED|DISABLED)|USER_(NOT_FOUND|INACTIVE)|1000|1001|1002|1003|1004)$/,
    seenIn: "OpenAI, Volcengine Ark, sub2api, Zhipu",
    source: `${SOURCES.openai}; ${SOURCES.ark}; ${SOURCES.sub2api}; ${SOURCES.zhipu}`,
    category: "auth_failed",
    reason: REASONS.apiKeyRejected,
  },
  {
    // Google answers a bad key with 400 INVALID_ARGUMENT, not 401.
    message: /\bAPI key not valid\b|please pass a valid API key/i,
    seenIn: "Google Gemini",
    source: SOURCES.geminiKey,
    category: "auth_failed",
    reason: REASONS.apiKeyRejected,
  },
  {
    message:
      /incorrect api key provided|invalid api key|didn't provide an api key|invalid subscription key/i,
    seenIn: "OpenAI, Azure OpenAI, SiliconFlow",
    source: `${SOURCES.openai}; ${SOURCES.azure}; ${SOURCES.siliconflow}`,
    category: "auth_failed",
    reason: REASONS.apiKeyRejected,
  },
  {
    type: /^(token_not_found_in_db|expired_key)$/i,
    seenIn: "LiteLLM",
    source: SOURCES.litellm,
    category: "auth_failed",
    reason: REASONS.gatewayTokenRejected,
  },
  {
    message:
      /无效的\s*(令牌|token)|(令牌|token)\s*已过期|未提供\s*(令牌|token)|(令牌|token)\s*状态不可用|用户已被封禁|该用户已被禁用/i,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "auth_failed",
    reason: REASONS.gatewayTokenRejected,
  },
  {
    message:
      /\binvalid token\b|this token has expired|token not provided|token status is unavailable|user has been banned|invalid proxy server token/i,
    seenIn: "new-api, LiteLLM",
    source: `${SOURCES.newApi}; ${SOURCES.litellm}`,
    category: "auth_failed",
    reason: REASONS.gatewayTokenRejected,
  },
  {
    code: /^(1110|1111|1112|1121)$/,
    seenIn: "Zhipu",
    source: SOURCES.zhipu,
    category: "auth_failed",
    reason: REASONS.accountLocked,
  },

  // Rate limits (quota answers sent with 429 were taken above)
  {
    // A batch's own error, or a create refused with 400 by a gateway: a wait, not bad parameters.
    code: /^token_limit_exceeded$/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiBatchTokens,
    category: "rate_limited",
    reason: REASONS.enqueuedTokens,
  },
  {
    message: /\benqueued token limit reached\b/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiBatchTokens,
    category: "rate_limited",
    reason: REASONS.enqueuedTokens,
  },
  {
    message: /上游(负载)?已饱和|upstream load .{0,40}saturated|均已达到并发上限/i,
    seenIn: "new-api",
    source: SOURCES.newApi429,
    category: "rate_limited",
    reason: REASONS.gatewaySaturated,
  },
  {
    code: /^(rate_limit_exceeded|token_concurrency_limit_reached|1302|1303|1305|1312)$/i,
    seenIn: "OpenAI, new-api, Zhipu",
    source: `${SOURCES.openai}; ${SOURCES.newApi}; ${SOURCES.zhipu}`,
    category: "rate_limited",
    reason: REASONS.rateLimited,
  },
  {
    message:
      /rate limit reached|请求数限制|reached the (total )?request limit|并发数过高|频率过高|concurrency limit exceeded/i,
    seenIn: "OpenAI, new-api, Zhipu, sub2api",
    source: `${SOURCES.openai}; ${SOURCES.newApi}; ${SOURCES.zhipu}; ${SOURCES.sub2api}`,
    category: "rate_limited",
    reason: REASONS.rateLimited,
  },

  // Endpoint
  {
    message: /^invalid url \(/i,
    seenIn: "OpenAI, new-api, one-api",
    source: `${SOURCES.openai}; ${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "endpoint_not_found",
    reason: REASONS.invalidUrl,
  },
  {
    code: /^api_not_implemented$/i,
    seenIn: "new-api, one-api",
    source: `${SOURCES.newApi}; ${SOURCES.oneApi}`,
    category: "endpoint_not_found",
    reason: REASONS.notImplemented,
  },

  // Request parameters named by type or code, whatever the status (new-api answers some with 500)
  {
    // A failed batch's errors.data[]: a line of its input file, with no HTTP status of its own.
    code: /^(invalid_json_line|duplicate_custom_id|url_mismatch|model_mismatch)$/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiBatchLines,
    category: "bad_request",
    reason: REASONS.batchLineRefused,
  },
  {
    message: /^File is too large\.?$/i,
    seenIn: "OpenAI",
    source: SOURCES.openaiFiles,
    category: "bad_request",
    reason: REASONS.batchFileTooLarge,
  },
  {
    message: /request body too large|请求体过大/i,
    seenIn: "new-api",
    source: SOURCES.newApi,
    category: "bad_request",
    reason: REASONS.bodyTooLarge,
  },
  {
    type: /^image_generation_user_error$/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "bad_request",
    reason: REASONS.badParams,
  },
  {
    code:
      /^(invalid_value|unknown_parameter|unsupported_parameter|invalid_request|bad_request_body|convert_request_failed|read_request_body_failed|invalid_image_request|size_not_supported|prompt_too_long|prompt_missing|n_not_within_range|1210|1214|1261)$/i,
    seenIn: "OpenAI, new-api, one-api, Zhipu",
    source: `${SOURCES.openai}; ${SOURCES.newApi}; ${SOURCES.oneApi}; ${SOURCES.zhipu}`,
    category: "bad_request",
    reason: REASONS.badParams,
  },

  {
    message: /^Argument not supported: /i,
    seenIn: "xAI",
    source: SOURCES.xai,
    category: "bad_request",
    reason: REASONS.badParams,
  },

  // Status families, when no text or code said more
  {
    status: { from: 300, to: 399 },
    source: SOURCES.http,
    category: "endpoint_not_found",
    reason: REASONS.redirected,
  },
  { status: 401, source: SOURCES.http, category: "auth_failed", reason: REASONS.unauthorized },
  {
    status: 402,
    seenIn: "OpenRouter",
    source: SOURCES.openrouter,
    category: "quota_exceeded",
    reason: REASONS.paymentRequired,
  },
  { status: 403, source: SOURCES.http, category: "auth_failed", reason: REASONS.forbidden },
  {
    status: [404, 405, 410],
    seenIn: "nginx",
    source: `${SOURCES.http}; ${SOURCES.nginx}`,
    category: "endpoint_not_found",
    reason: REASONS.endpointMissing,
  },
  {
    status: 408,
    seenIn: "nginx, OpenRouter, LiteLLM",
    source: `${SOURCES.nginx}; ${SOURCES.openrouter}`,
    category: "upstream_failure",
    reason: REASONS.upstreamRequestTimeout,
  },
  {
    status: 413,
    seenIn: "nginx",
    source: SOURCES.nginx,
    category: "bad_request",
    reason: REASONS.bodyTooLarge,
  },
  {
    status: 429,
    seenIn: "Azure OpenAI, LiteLLM, OpenRouter, sub2api",
    source: `${SOURCES.http}; ${SOURCES.azure}; ${SOURCES.litellm}; ${SOURCES.sub2api}`,
    category: "rate_limited",
    reason: REASONS.rateLimited,
  },
  { status: { from: 400, to: 499 }, category: "bad_request", reason: REASONS.badParams },
  { status: 501, category: "endpoint_not_found", reason: REASONS.notImplemented },
  {
    status: [504, 524],
    seenIn: "nginx, Cloudflare",
    source: `${SOURCES.nginx}; ${SOURCES.cloudflare}`,
    category: "upstream_failure",
    reason: REASONS.gatewayCutLongGeneration,
  },
  {
    status: { from: 520, to: 527 },
    seenIn: "Cloudflare",
    source: SOURCES.cloudflare,
    category: "upstream_failure",
    reason: REASONS.cloudflareOrigin,
  },
  {
    status: { from: 500, to: 599 },
    seenIn: "new-api, sub2api",
    source: `${SOURCES.http}; ${SOURCES.newApi}; ${SOURCES.sub2api}`,
    category: "upstream_failure",
    reason: REASONS.upstreamFailed,
  },

  // No status family matched, as for an error sent inside an event stream or a 2xx answer: the
  // type OpenAI gives its 5xx errors reads as that family does
  {
    type: /^server_error$/i,
    seenIn: "OpenAI",
    source: SOURCES.openai,
    category: "upstream_failure",
    reason: REASONS.upstreamFailed,
  },

  // Anything else the upstream said: an error object with HTTP 200, or an unexpected status
  { category: "upstream_failure", reason: REASONS.unclassified },
];

/** The ordered rules; the first whose conditions all hold decides. The last matches anything. */
export const DIAGNOSIS_RULES: readonly DiagnosisRule[] = Object.freeze(
  RULE_SOURCES.map((rule) => Object.freeze({ ...rule, retryable: isRetryable(rule.category) })),
);

const CATCH_ALL = DIAGNOSIS_RULES[DIAGNOSIS_RULES.length - 1] as DiagnosisRule;

/** The rule that decides these facts. */
export function findRule(facts: FailureFacts): DiagnosisRule {
  return DIAGNOSIS_RULES.find((rule) => ruleMatches(rule, facts)) ?? CATCH_ALL;
}

/** Said after the rule's reason when the upstream refused a retry the category would allow. */
const RETRY_REFUSED: Reason = {
  zh: "上游在响应头中要求不要重试这个请求(x-should-retry: false)。",
  en: "The upstream asked not to retry this request (x-should-retry: false).",
};

/**
 * The diagnosis of these facts. `x-should-retry: false` makes any failure not retryable, as the
 * OpenAI SDKs treat it; `true` is not taken as a reason to retry what the answer's own words
 * rule out, since a gateway may pass it on from its upstream beside an answer of its own.
 * `retry_after_ms` is given only with a retryable failure.
 */
export function diagnose(facts: FailureFacts, lang: Lang): Diagnosis {
  const rule = findRule(facts);
  const refused = rule.retryable && facts.retryRefused;
  const diagnosis: Diagnosis = {
    category: rule.category,
    human_reason: refused ? `${rule.reason[lang]} ${RETRY_REFUSED[lang]}` : rule.reason[lang],
    retryable: rule.retryable && !refused,
  };
  const wait = facts.retryAfterMs;
  if (diagnosis.retryable && wait !== null && Number.isFinite(wait) && wait >= 0) {
    diagnosis.retry_after_ms = wait;
  }
  return diagnosis;
}

function ruleMatches(rule: RuleConditions, facts: FailureFacts): boolean {
  return (rule.stage === undefined || listOf(rule.stage).includes(facts.stage)) &&
    (rule.cause === undefined || rule.cause === facts.cause) &&
    (rule.status === undefined || statusMatches(rule.status, facts.httpStatus)) &&
    textMatches(rule.type, facts.upstreamType) &&
    textMatches(rule.code, facts.upstreamCode) &&
    textMatches(rule.message, facts.upstreamMessage);
}

export function listOf<T>(value: T | readonly T[]): readonly T[] {
  return Array.isArray(value) ? value : [value as T];
}

export function isRange(match: StatusMatch): match is StatusRange {
  return typeof match === "object" && !Array.isArray(match);
}

function statusMatches(match: StatusMatch, status: number | null): boolean {
  if (status === null) return false;
  if (isRange(match)) return status >= match.from && status <= match.to;
  return listOf(match).includes(status);
}

function textMatches(pattern: RegExp | undefined, text: string | null): boolean {
  if (pattern === undefined) return true;
  return text !== null && pattern.test(text);
}
